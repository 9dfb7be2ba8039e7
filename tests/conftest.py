import pytest
import torch

from activebatch.testing import make_evidence  # noqa: F401  (the tests' evidence)

#: Options that keep the strategies that train networks at selection time short in the tests that
#: run every strategy (they check the contract, not the defaults' cost: VAAL trains a VAE for
#: thousands of iterations, discriminative AL 20 discriminators per selection).
SMALL_OPTIONS = {"vaal": dict(iterations=30, discriminator_width=64, mlp_width=64),
                 "discriminative": dict(sub_batches=2, width=16, max_epochs=1)}

torch.set_num_threads(1)


@pytest.fixture
def evidence_arrays():
    return make_evidence()
