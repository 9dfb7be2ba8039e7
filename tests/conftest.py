import pytest
import torch

from activebatch.testing import make_evidence  # noqa: F401  (the tests' evidence)

torch.set_num_threads(1)


@pytest.fixture
def evidence_arrays():
    return make_evidence()
