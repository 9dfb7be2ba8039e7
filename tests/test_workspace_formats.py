"""Label files and Label Studio's formats; item readers; the page's files ship with the package."""
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from activebatch.workspace import InputFileError

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib
from activebatch.workspace.formats import label_config, label_studio_tasks, read_label_file
from activebatch.workspace.items import read_items

ROOT = Path(__file__).resolve().parents[1]


def write_json(path, data):
    path.write_text(json.dumps(data))
    return path


def ann(choice, *, who=None, at="2026-01-01T00:00:00Z", cancelled=False, from_name="label"):
    return {"completed_by": who, "was_cancelled": cancelled, "updated_at": at,
            "result": [{"from_name": from_name, "to_name": "image", "type": "choices",
                        "value": {"choices": [choice]}}]}


def test_label_studio_full_export(tmp_path):
    tasks = [
        # several annotations: each one that was not cancelled is a vote
        {"data": {"activebatch_id": "a"},
         "annotations": [ann("cat", who=3, at="2026-01-01T10:00:00Z"),
                         ann("dog", who={"email": "x@y.org"}, at="2026-01-02T10:00:00Z"),
                         ann("bird", at="2026-01-03T10:00:00Z", cancelled=True)]},
        {"data": {"activebatch_id": "b"}, "annotations": [ann("bird", who=3)]},
        {"data": {"activebatch_id": "c"}, "annotations": []},                       # not labelled yet
        {"data": {"activebatch_id": "d"}, "annotations": [ann("cat", cancelled=True)]},  # skipped in Label Studio
        {"data": {"activebatch_id": 7}, "annotations": [{"result": [{"type": "rating", "value": {"rating": 3}}]}]},
    ]
    rows = read_label_file(write_json(tmp_path / "ls.json", tasks))
    assert rows.ids == ["a", "a", "b"] and rows.labels == ["cat", "dog", "bird"]
    assert rows.annotators == ["labelstudio-user-3", "x@y.org", "labelstudio-user-3"] and rows.unlabeled == 3
    latest = rows.resolve("latest")
    assert latest.ids == ["a", "b"] and latest.labels == ["dog", "bird"] and latest.settled == 1
    assert latest.annotators == ["x@y.org", "labelstudio-user-3"]


def test_label_studio_min_export_and_choice_names(tmp_path):
    rows = read_label_file(write_json(tmp_path / "min.json", [
        {"activebatch_id": "a", "label": "cat", "annotator": "p@q.org"},
        {"activebatch_id": "b", "label": {"choices": ["dog"]}},
        {"activebatch_id": "c"},
    ]))
    assert (rows.ids, rows.labels, rows.annotators, rows.unlabeled) == (
        ["a", "b"], ["cat", "dog"], ["p@q.org", None], 1)
    two = [{"data": {"activebatch_id": "a"}, "annotations": [{"result": [
        {"from_name": "label", "type": "choices", "value": {"choices": ["cat"]}},
        {"from_name": "quality", "type": "choices", "value": {"choices": ["good"]}}]}]}]
    with pytest.raises(InputFileError, match="several choice results .*--from-name"):
        read_label_file(write_json(tmp_path / "two.json", two))
    assert read_label_file(tmp_path / "two.json", from_name="quality").labels == ["good"]
    multi = [{"data": {"activebatch_id": "a"}, "annotations": [{"result": [
        {"from_name": "label", "type": "choices", "value": {"choices": ["cat", "dog"]}}]}]}]
    with pytest.raises(InputFileError, match="exactly one chosen class"):
        read_label_file(write_json(tmp_path / "multi.json", multi))
    with pytest.raises(InputFileError, match="expected a JSON list of tasks.*got the number 3"):
        read_label_file(write_json(tmp_path / "num.json", 3))


def test_label_tables(tmp_path):
    pd.DataFrame({"activebatch_id": ["007", "008", "009"], "label": ["x", None, "y"],
                  "annotator": ["ann", None, None]}).to_csv(tmp_path / "l.csv", index=False)
    rows = read_label_file(tmp_path / "l.csv")
    assert rows.ids == ["007", "009"] and rows.labels == ["x", "y"] and rows.annotators == ["ann", None]
    assert rows.unlabeled == 1
    pd.DataFrame({"id": [1, 2], "label": [0, 1]}).to_parquet(tmp_path / "l.parquet")
    rows = read_label_file(tmp_path / "l.parquet")
    assert rows.ids == ["1", "2"] and rows.labels == ["0", "1"]


def test_tasks_and_config_agree():
    classes = ["cat", "dog & co", '"quoted"']
    config = ET.fromstring(label_config("image", classes))
    choices = config.find("Choices")
    assert choices.get("name") == "label" and choices.get("toName") == config.find("Image").get("name")
    assert [c.get("value") for c in choices] == classes
    batch = pd.DataFrame({"item_id": ["a.png"], "round": [2], "rank": [0], "position": [5], "source": ["/x/a.png"],
                          "display": [None], "predicted": ["dog & co"], "confidence": [0.5]})
    task = label_studio_tasks(batch, kind="image", image_url=lambda r: "/img/" + r["item_id"])[0]
    assert task["data"] == {"image": "/img/a.png", "activebatch_id": "a.png", "activebatch_round": 2,
                            "activebatch_rank": 0, "activebatch_position": 5}
    result = task["predictions"][0]["result"][0]
    assert result["from_name"] == choices.get("name") and result["to_name"] == "image"
    assert result["value"] == {"choices": ["dog & co"]} and task["predictions"][0]["score"] == 0.5
    tab = ET.fromstring(label_config("tabular", classes))
    assert tab.find("Text").get("value") == "$row"


def test_table_items_encoding(tmp_path):
    pd.DataFrame({"key": ["k1", "k2", "k3", "k4"], "num": [1.0, np.nan, 3.0, 5.0], "flag": [True, False, True, True],
                  "kind": ["x", "y", None, "x"], "note": ["a", "b", "c", "d"], "y": ["p", "", "q", None]}
                 ).to_csv(tmp_path / "t.csv", index=False)
    with pytest.raises(InputFileError, match="column 'num' has 1 empty cell"):   # never filled silently
        read_items(tmp_path / "t.csv", id_column="key", label_column="y", ignore_columns=["note"])
    items = read_items(tmp_path / "t.csv", id_column="key", label_column="y", ignore_columns=["note"],
                       missing="mean")
    assert items.kind == "tabular" and items.ids.tolist() == ["k1", "k2", "k3", "k4"]
    assert items.feature_names == ["num", "flag", "kind=<missing>", "kind=x", "kind=y"]
    np.testing.assert_allclose(items.features[:, 0], [1, 3, 3, 5])          # missing -> column mean, as asked
    assert items.info["imputed"] == {"num": {"value": 3.0, "count": 1}}
    np.testing.assert_array_equal(items.features[:, 2:], [[0, 1, 0], [0, 0, 1], [1, 0, 0], [0, 1, 0]])
    assert items.labels == {"k1": "p", "k3": "q"}
    assert items.displays[1] == {"key": "k2", "num": None, "flag": False, "kind": "y", "note": "b"}
    with pytest.raises(InputFileError, match="text column 'key' has"):
        pd.DataFrame({"key": [f"k{i}" for i in range(60)], "v": range(60)}).to_csv(tmp_path / "many.csv", index=False)
        read_items(tmp_path / "many.csv")


def test_image_items_resize_and_colour(tmp_path):
    from PIL import Image

    folder = tmp_path / "imgs"
    (folder / "sub").mkdir(parents=True)
    Image.new("RGB", (100, 80), (255, 0, 0)).save(folder / "b.png")
    Image.new("RGB", (50, 50), (0, 0, 255)).save(folder / "sub" / "a.jpg")
    (folder / ".hidden.png").write_bytes(b"")
    (folder / "notes.txt").write_text("not an image")
    items = read_items(folder)
    assert items.ids.tolist() == ["b.png", "sub/a.jpg"]
    assert items.info["image_shape"] == [3, 32, 32] and items.features.shape == (2, 3 * 32 * 32)
    red = items.features[0].reshape(3, 32, 32)
    assert red[0].min() == 1.0 and red[1].max() == 0.0 and red[2].max() == 0.0   # channel-major
    grey = read_items(folder, image_size=8, image_mode="L")
    assert grey.features.shape == (2, 64) and grey.info["image_shape"] == [1, 8, 8]


def test_page_files_are_package_data():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["activebatch.workspace"]
    static = ROOT / "src" / "activebatch" / "workspace" / "static"
    files = sorted(p.name for p in static.iterdir())
    assert {"index.html", "app.js", "style.css"} <= set(files)
    assert all(any(Path("static", f).match(p) for p in patterns) for f in files)
