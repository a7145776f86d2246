from pathlib import Path

from outreach.spreadsheet import safe_cell, write_csv
from outreach.storage import LocalStorage, sha256_of


def test_local_storage_puts_atomically_and_replaces(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "batches")
    src = tmp_path / "a.pdf"
    src.write_bytes(b"%PDF-1.4 one")
    storage.put("run-000001/batch-0001/envelopes.pdf", src)
    assert storage.exists("run-000001/batch-0001/envelopes.pdf")
    src.write_bytes(b"%PDF-1.4 two")
    storage.put("run-000001/batch-0001/envelopes.pdf", src)
    with storage.open("run-000001/batch-0001/envelopes.pdf") as f:
        assert f.read() == b"%PDF-1.4 two"
    # No temporary file is left beside the real one.
    assert [p.name for p in (tmp_path / "batches/run-000001/batch-0001").iterdir()] == ["envelopes.pdf"]
    with storage.open("run-000001/batch-0001/envelopes.pdf") as f:
        assert len(sha256_of(f)) == 64
    storage.delete("run-000001/batch-0001/envelopes.pdf")
    assert not storage.exists("run-000001/batch-0001/envelopes.pdf")


def test_safe_cells_neutralise_formulas() -> None:
    assert safe_cell('=HYPERLINK("x")') == '\'=HYPERLINK("x")'
    assert safe_cell("+86 138") == "'+86 138"
    assert safe_cell("@SUM(A1)") == "'@SUM(A1)"
    assert safe_cell("-1+2") == "'-1+2"
    assert safe_cell("-12.50") == "-12.50"
    assert safe_cell("王秀英") == "王秀英"
    assert safe_cell(None) == ""


def test_write_csv_is_spreadsheet_safe(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    assert write_csv(path, ["name", "unit"], [["=1+1", "尤溪县纺织厂"]]) == 1
    text = path.read_text(encoding="utf-8-sig")
    assert "'=1+1" in text and "尤溪县纺织厂" in text
