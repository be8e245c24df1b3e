"""Real dataset layouts on data the tests write, and every bad-input case: each must give
one clear error line naming the file/line/id and what was expected, never a traceback."""
import numpy as np
import pytest
from helpers import make_authors, make_generic, write_image
from PIL import Image

from advrec_core.cli import main
from advrec_core.data import DataConfig, load_dataset
from advrec_core.data.images import load_image
from advrec_core.errors import DataError

GOOD = ["u1,A,1,5", "u1,B,2,4", "u2,A,3,3", "u2,C,4,4", "u3,B,5,2", "u3,A,6,5", "u4,C,7,1"]


def cli_error(capsys, *argv) -> str:
    """Run the CLI, assert it failed cleanly (exit 2, one line, no traceback)."""
    rc = main(["-q", *argv])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert "Traceback" not in err
    lines = [line for line in err.strip().splitlines() if line]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


# --- happy paths ---------------------------------------------------------------------------

def test_generic_layout_loads_and_splits(tmp_path):
    root = make_generic(tmp_path / "g", GOOD, categories=["A,Shoe", "B,Bag", "C,Shoe"])
    ds = load_dataset(root)
    assert (ds.n_users, ds.n_items, ds.n_interactions) == (4, 3, 7)
    assert ds.layout == "generic" and ds.categories == ("Bag", "Shoe")
    # last by time: u1->B, u2->C, u3->A go to test; u4 has one interaction (train only)
    test = {(ds.user_ids[u], ds.item_ids[i]) for u, i in ds.test[["user", "item"]].to_numpy()}
    assert test == {("u1", "B"), ("u2", "C"), ("u3", "A")}
    assert list(ds.category_names()) == ["Shoe", "Bag", "Shoe"]
    table = ds.category_table().set_index("category")
    assert table.loc["Shoe", "interactions"] == 5 and table.loc["Bag", "items"] == 1


def test_generic_iso_dates_tsv_and_aliases(tmp_path):
    root = tmp_path / "g"
    root.mkdir()
    (root / "interactions.tsv").write_text(
        "reviewerID\tasin\tunixReviewTime\toverall\n"
        "x\tI1\t2014-01-02\t5\nx\tI2\t2014-01-01T10:00:00\t3\ny\tI1\t2014-02-01\t4\n"
        "y\tI2\t2014-03-01\t4\n")
    for it in ("I1", "I2"):
        write_image(root / "images" / f"{it}.jpg", fmt="JPEG")
    ds = load_dataset(root)
    x = int(np.flatnonzero(ds.user_ids == "x")[0])
    last_x = ds.test.loc[ds.test["user"] == x, "item"].item()
    assert ds.item_ids[last_x] == "I1"  # 2014-01-02 is after 2014-01-01T10:00
    assert ds.test["rating"].notna().all()


def test_authors_layout_with_classes(tmp_path):
    train = ["1\t10\t5\t100", "1\t11\t4\t101", "2\t10\t3\t102", "2\t12\t5\t103"]
    test = ["1\t12\t5\t200", "2\t13\t4\t201"]  # item 13 unseen in training: moved back
    root = make_authors(tmp_path / "a", train, test,
                        classes=["10,Sandal,774,0.9", "11,Running shoe,770,0.8",
                                 "12,Sandal,774,0.7", "13,Brassiere,459,0.6"])
    ds = load_dataset(root)
    assert ds.layout == "authors"
    assert ds.n_users == 2 and ds.n_items == 4 and len(ds.test) == 1
    assert any("moved 1 test rows" in n for n in ds.notes)
    assert ds.categories == ("Brassiere", "Running shoe", "Sandal")
    assert ds.item_ids.tolist() == [10, 11, 12, 13]
    assert [ds.categories[c] for c in ds.item_category] == ["Sandal", "Running shoe", "Sandal",
                                                             "Brassiere"]
    assert ds.image_paths[0].name == "10.jpg"


AUTHORS_TRAIN = ["1\t10\t5\t100", "1\t11\t4\t101", "2\t10\t3\t102", "2\t12\t5\t103"]
AUTHORS_TEST = ["1\t12\t5\t200", "2\t13\t4\t201"]


def test_authors_release_layout_classes_per_extractor(tmp_path):
    """As released: original/classes.csv (ImageNet ResNet50's classes: the paper's categories)
    and one classes.csv per robust ResNet50 (madry_original/, free_adv_original/); a predicted-
    category ResNet50 reads its own, without computing features."""
    from advrec_core.experiments.attack import source_items
    from advrec_core.experiments.categories import categorize
    from advrec_core.extractors import ExtractorConfig

    root = make_authors(tmp_path / "a", AUTHORS_TRAIN, AUTHORS_TEST, classes_in="original",
                        classes=["10,sandal,774,0.9", "11,running shoe,770,0.8",
                                 "12,sandal,774,0.7", "13,brassiere,459,0.6"],
                        defense_classes={"madry_original": [
                            "10,sandal,774,0.5", "11,sandal,774,0.4", "12,clog,502,0.3",
                            "13,brassiere,459,0.6"]})
    ds = load_dataset(root)
    assert ds.categories == ("brassiere", "running shoe", "sandal")
    assert set(ds.given_predictions) == {"traditional", "at"}  # no free_adv_original/ here
    t = categorize(ds, ExtractorConfig(arch="resnet50"), "predicted", cache=None)
    assert source_items(t, "Sandal", None).tolist() == [0, 2]  # case-insensitive
    at = categorize(ds, ExtractorConfig(arch="resnet50", defense="at"), "predicted", cache=None)
    assert at.categories == ("brassiere", "clog", "sandal")
    assert source_items(at, "sandal", None).tolist() == [0, 1]
    assert any("madry_original/classes.csv" in n for n in at.notes)


def test_authors_classes_at_the_root_still_read(tmp_path):
    root = make_authors(tmp_path / "a", AUTHORS_TRAIN, AUTHORS_TEST,
                        classes=["10,Sandal,774,0.9", "11,Running shoe,770,0.8"])
    assert load_dataset(root).categories == ("Running shoe", "Sandal")


def test_authors_defense_classes_defect_names_the_file(tmp_path, capsys):
    root = make_authors(tmp_path / "a", AUTHORS_TRAIN, AUTHORS_TEST, classes_in="original",
                        classes=["10,Sandal,774,0.9"],
                        defense_classes={"free_adv_original": ["99,Sandal,774,0.9"]})
    err = cli_error(capsys, "info", str(root))
    assert "free_adv_original/classes.csv, line 2" in err and "unknown item id '99'" in err


def test_duplicates_policy_first_keeps_one(tmp_path):
    rows = GOOD + ["u1,A,9,1"]
    ds = load_dataset(make_generic(tmp_path / "g", rows), DataConfig(duplicates="first"))
    assert ds.n_interactions == len(GOOD)


def test_k_core_filter_applies(tmp_path):
    ds = load_dataset(make_generic(tmp_path / "g", GOOD), DataConfig(k_core=2))
    # u4 has one interaction -> dropped; then C has one (u2) -> dropped; u2 keeps A only...
    assert "u4" not in set(ds.user_ids)
    assert ds.train.groupby("user").size().add(
        ds.test.groupby("user").size(), fill_value=0).min() >= 2


# --- bad input, through the CLI ----------------------------------------------------------

def test_missing_image(tmp_path, capsys):
    root = make_generic(tmp_path / "g", GOOD, items=["A", "B"])
    line = cli_error(capsys, "info", str(root))
    assert "images" in line and "no image for item 'C'" in line
    assert "interactions.csv line 5" in line and "expected" in line


def test_missing_image_with_integer_ids_reads_plainly(tmp_path, capsys):
    root = make_authors(tmp_path / "a", AUTHORS_TRAIN, AUTHORS_TEST, items=["10", "11", "12"])
    line = cli_error(capsys, "info", str(root))
    assert "no image for item 13 (" in line and "np." not in line, line


def test_empty_interactions_file(tmp_path, capsys):
    root = make_generic(tmp_path / "g", GOOD)
    (root / "interactions.csv").write_text("")
    line = cli_error(capsys, "info", str(root))
    assert "interactions.csv" in line and "empty" in line


def test_header_without_timestamp(tmp_path, capsys):
    root = make_generic(tmp_path / "g", ["u1,A", "u1,B"], header="user,item")
    line = cli_error(capsys, "info", str(root))
    assert "lacks timestamp" in line and "user,item,timestamp" in line


def test_bad_timestamp_names_line(tmp_path, capsys):
    root = make_generic(tmp_path / "g", GOOD[:3] + ["u2,C,yesterday,4"])
    line = cli_error(capsys, "info", str(root))
    assert "line 5" in line and "'yesterday'" in line and "ISO-8601" in line


def test_non_numeric_rating(tmp_path, capsys):
    root = make_generic(tmp_path / "g", GOOD[:2] + ["u2,A,3,great"])
    line = cli_error(capsys, "info", str(root))
    assert "line 4" in line and "rating 'great' is not a number" in line


def test_authors_duplicate_across_files(tmp_path, capsys):
    root = make_authors(tmp_path / "a", ["1\t10\t5\t100", "1\t11\t4\t101"], ["1\t11\t5\t200"])
    line = cli_error(capsys, "info", str(root))
    assert "trainingset.tsv line 2 and" in line and "testset.tsv line 1" in line
    assert "user 1 and item 11" in line


def test_duplicate_rows(tmp_path, capsys):
    root = make_generic(tmp_path / "g", GOOD + ["u1,A,9,1"])
    line = cli_error(capsys, "info", str(root))
    assert "line 2 and" in line and "line 9" in line
    assert "user 'u1' and item 'A'" in line and "duplicates=" in line


def test_split_without_test_users(tmp_path, capsys):
    root = make_generic(tmp_path / "g", ["u1,A,1,5", "u2,B,2,4", "u3,A,3,3"])
    line = cli_error(capsys, "info", str(root))
    assert "no test users" in line and ">= 2 interactions" in line


def test_authors_non_numeric_id(tmp_path, capsys):
    root = make_authors(tmp_path / "a", ["1\t10\t5\t100", "abc\t11\t4\t101"], ["1\t11\t5\t200"],
                        items=["10", "11"])
    line = cli_error(capsys, "info", str(root))
    assert "trainingset.tsv, line 2" in line and "user id 'abc' is not an integer" in line


def test_authors_unknown_test_user(tmp_path, capsys):
    root = make_authors(tmp_path / "a", ["1\t10\t5\t100", "1\t11\t4\t101"],
                        ["1\t12\t5\t200", "7\t10\t4\t201"])
    line = cli_error(capsys, "info", str(root))
    assert "testset.tsv, line 2" in line and "unknown user id 7" in line


def test_authors_wrong_column_count(tmp_path, capsys):
    root = make_authors(tmp_path / "a", ["1\t10\t5\t100\tx\ty"], ["1\t10\t5\t200"], items=["10"])
    line = cli_error(capsys, "info", str(root))
    assert "trainingset.tsv" in line and "6 columns" in line


def test_unknown_item_in_category_file(tmp_path, capsys):
    root = make_generic(tmp_path / "g", GOOD, categories=["A,Shoe", "Z,Bag"])
    line = cli_error(capsys, "info", str(root))
    assert "items.csv, line 3" in line and "unknown item id 'Z'" in line


def test_not_a_dataset_folder(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    line = cli_error(capsys, "info", str(tmp_path / "empty"))
    assert "no dataset found" in line and "trainingset.tsv" in line and "interactions.csv" in line


# --- images: decode errors and conversions ---------------------------------------------

def test_undecodable_image(tmp_path, capsys):
    root = make_generic(tmp_path / "g", GOOD)
    (root / "images" / "B.png").write_bytes(b"this is not a png")
    with pytest.raises(DataError, match=r"B\.png: cannot decode"):
        load_image(root / "images" / "B.png")
    rc = main(["-q", "info", str(root), "--check-images"])
    out = capsys.readouterr()
    assert rc == 1 and "Traceback" not in out.err
    assert "error" in out.out and "B.png: cannot decode" in out.out


def test_truncated_image(tmp_path):
    p = write_image(tmp_path / "t.png", size=(64, 64))
    p.write_bytes(p.read_bytes()[:60])
    with pytest.raises(DataError, match=r"t\.png: cannot decode"):
        load_image(p)


def test_empty_image_file(tmp_path):
    p = tmp_path / "e.jpg"
    p.write_bytes(b"")
    with pytest.raises(DataError, match=r"e\.jpg: image file is empty \(0 bytes\)"):
        load_image(p)


def test_decompression_bomb_our_limit(tmp_path):
    p = write_image(tmp_path / "big.png", size=(200, 100))
    with pytest.raises(DataError, match=r"big\.png: image is 200x100 = 20,000 pixels, over the limit"):
        load_image(p, max_pixels=10_000)


def test_decompression_bomb_pillow_limit(tmp_path, monkeypatch):
    p = write_image(tmp_path / "big.png", size=(200, 100))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(DataError, match=r"big\.png: possible decompression bomb"):
        load_image(p, max_pixels=10**9)


@pytest.mark.parametrize("mode,fmt,note,pixel", [
    ("L", "PNG", "converted grayscale to RGB", (128, 128, 128)),
    ("RGBA", "PNG", "composited RGBA transparency on white", (255, 127, 127)),
    ("LA", "PNG", "composited LA transparency on white", (152, 152, 152)),  # 50 over white, alpha 128
    ("CMYK", "JPEG", "converted CMYK to RGB", None),
    ("I;16", "PNG", "16-bit", (155, 155, 155)),  # 40000 / 65535 * 255, scaled not clipped
    ("1", "PNG", "converted", (255, 255, 255)),
])
def test_mode_conversions_are_reported(tmp_path, mode, fmt, note, pixel):
    p = write_image(tmp_path / f"x.{fmt.lower()}", mode=mode, fmt=fmt)
    arr, msg = load_image(p)
    assert arr.dtype == np.uint8 and arr.shape == (16, 16, 3)
    assert msg is not None and note in msg
    if pixel is not None:
        assert np.abs(arr[0, 0].astype(int) - pixel).max() <= 1
    if mode == "CMYK":
        assert arr[0, 0, 0] > 200 and arr[0, 0, 1] < 60  # (0, 255, 255, 0) CMYK is red


def test_check_images_reports_conversions(tmp_path):
    root = make_generic(tmp_path / "g", GOOD)
    write_image(root / "images" / "A.png", mode="L")
    report = load_dataset(root).check_images()
    assert report["item"].tolist() == ["A"]
    assert report["status"].tolist() == ["converted"]


@pytest.mark.parametrize("argv", [["poison", "--k", "2"], ["grid", "--run"],
                                  ["poison", "--k", "2", "--source", "Shoe", "--target", "Bag"]])
def test_too_few_categories_is_one_line_before_any_work(tmp_path, capsys, argv):
    """One category only: no pair to propose. Exit 2 and one line before any model is
    trained, with or without --source/--target (the grid, whose K=20 exceeds these 3 items,
    stops at that first)."""
    root = make_generic(tmp_path / "one", GOOD, categories=["A,Shoe", "B,Shoe", "C,Shoe"])
    line = cli_error(capsys, argv[0], str(root), "--categories", "true", *argv[1:])
    if "--source" in argv:  # the pair is given: the demo CNN cannot classify this dataset
        assert "demo-cnn trains on the demo corpus" in line
    elif argv[0] == "grid":
        assert "cut-off K=20 does not fit the 3 items" in line
    else:
        assert "needs at least two categories with >= 5 items" in line


@pytest.mark.parametrize("argv", [
    ["poison", "{root}", "--source", "Bag", "--target", "Shoe", "--categories", "true"],
    ["poison", "{root}", "--source", "Bag", "--target", "Shoe", "--categories", "true",
     "--k", "2", "9"],
    ["grid", "{root}", "--source", "Bag", "--target", "Shoe", "--categories", "true"]])
def test_cut_offs_the_catalog_cannot_fill_are_refused_first(tmp_path, capsys, argv):
    """A 3-item shop: K=10/20/50/100 (poison's default), K=9 or the grid's K=20 fail at once,
    in one line, before any feature extraction or attack (no extractor could load here)."""
    import time

    root = make_generic(tmp_path / "g", GOOD, categories=["A,Bag", "B,Shoe", "C,Shoe"])
    t0 = time.perf_counter()
    err = cli_error(capsys, *[a.replace("{root}", str(root)) for a in argv])
    assert time.perf_counter() - t0 < 2
    assert ("does not fit the 3 items" in err or "exceeds the 3 items" in err), err
    if "--k" in argv:
        assert "K=9" in err and "e.g. --k 2" in err


def authors_with_features(tmp_path, n_items=12, n_users=8):
    """An authors'-layout shop with original/classes.csv and original/features.npy (row =
    item id), and an 'attacked' features.npy in which the sandals' rows moved."""
    rng = np.random.default_rng(0)
    train, test = [], []
    for u in range(n_users):
        items = rng.choice(n_items, 4, replace=False)
        train += [f"{u}\t{i}\t5\t{100 + k}" for k, i in enumerate(items[:3])]
        test.append(f"{u}\t{items[3]}\t5\t200")
    classes = [f"{i},{'sandal' if i % 3 == 0 else 'running shoe'},{774 if i % 3 == 0 else 770},0.9"
               for i in range(n_items)]
    root = make_authors(tmp_path / "men", train, test, items=[str(i) for i in range(n_items)],
                        classes=classes, classes_in="original")
    clean = rng.random((n_items, 16)).astype(np.float32)
    poisoned = clean.copy()
    poisoned[::3] += 0.5
    np.save(root / "original" / "features.npy", clean)
    (root / "pgd_exp").mkdir()
    np.save(root / "pgd_exp" / "features.npy", poisoned)
    return root


def test_table1_from_given_features_without_any_cnn(tmp_path, capsys, monkeypatch):
    """Recommender-only Table 1: the authors' clean and attacked features.npy, no weights."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty_hub"))
    root = authors_with_features(tmp_path)
    rc = main(["-q", "poison-features", str(root), "--clean", str(root / "original/features.npy"),
               "--poisoned", str(root / "pgd_exp/features.npy"), "--source", "sandal",
               "--k", "2", "5", "--rec-epochs", "2", "--seeds", "0", "1"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "(4 items differ)" in out and "CHR@K of sandal" in out
    table = [row.split() for row in out.splitlines() if row.strip().startswith(("2 ", "5 "))]
    assert [r[0] for r in table] == ["2", "5"]


def test_given_features_defects_name_the_file(tmp_path, capsys):
    root = authors_with_features(tmp_path)
    np.save(root / "short.npy", np.zeros((5, 16), np.float32))
    np.save(root / "wide.npy", np.zeros((12, 8), np.float32))
    base = ["poison-features", str(root), "--clean", str(root / "original/features.npy"),
            "--source", "sandal", "--k", "2"]
    err = cli_error(capsys, *base, "--poisoned", str(root / "short.npy"))
    assert "short.npy: has 5 rows but item id 11 needs row 11" in err
    err = cli_error(capsys, *base, "--poisoned", str(root / "wide.npy"))
    assert "wide.npy: features of shape (12, 8); expected the clean features' (12, 16)" in err


def test_generic_features_with_item_listing_and_mcauley_binary(tmp_path):
    """Precomputed features for any shop: features.npy + features_items.txt (any ids), and
    He & McAuley's image_features_<name>.b (10-byte ASIN + 4096 float32 LE, repeated)."""
    from advrec_core.experiments.poison import MCAULEY_RECORD, read_item_features

    asins = ["B000000001", "B000000002", "B000000003"]
    rows = [f"u{u},{asins[(u + k) % 3]},{k},5" for u in range(3) for k in range(3)]
    root = make_generic(tmp_path / "g", rows)
    ds = load_dataset(root)
    rng = np.random.default_rng(0)
    f = rng.random((3, 5)).astype(np.float32)
    np.save(root / "features.npy", f[::-1])
    (root / "features_items.txt").write_text("\n".join(asins[::-1]) + "\n")
    np.testing.assert_array_equal(read_item_features(ds, root / "features.npy"), f)
    rec = np.zeros(4, MCAULEY_RECORD)
    rec["asin"] = [b"B000000009", *(a.encode() for a in asins[::-1])]
    rec["features"] = rng.random((4, 4096)).astype("<f4")
    rec.tofile(root / "image_features_Shop.b")
    got = read_item_features(ds, root / "image_features_Shop.b")
    np.testing.assert_array_equal(got, rec["features"][[3, 2, 1]])
    (root / "cut.b").write_bytes((root / "image_features_Shop.b").read_bytes()[:-7])
    with pytest.raises(DataError, match="cut.b: .* not a whole number of 16394-byte records"):
        read_item_features(ds, root / "cut.b")
