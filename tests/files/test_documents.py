"""Splitting pasted text and reading uploads into documents."""

import json

import pandas as pd
import pytest

from reranker.files import documents
from reranker.errors import InputError


@pytest.mark.parametrize("mode, text, expected", [
    ("line", "a\n\nb  \r\n c\n", ["a", "b", "c"]),
    ("blank", "one\ntwo\n\n  \nthree\r\n\r\nfour", ["one\ntwo", "three", "four"]),
    ("dashes", "x\n---\ny\nz\n  -----  \n\n---\nw", ["x", "y\nz", "w"]),
    ("dashes", "a --- b", ["a --- b"]),  # only a line of dashes separates
    ("dashes", "a\n--\nb\n- - -\nc", ["a\n--\nb\n- - -\nc"]),  # three dashes or more, in one run
    ("blank", "a\n---\nb\n \t\nc", ["a\n---\nb", "c"]),
    ("line", "   \n\n", []),
])
def test_split_text(mode, text, expected):
    assert documents.split_text(text, mode) == expected


def test_split_text_unknown_mode():
    with pytest.raises(InputError, match="split mode"):
        documents.split_text("a", "commas")


def test_csv_with_bom_and_semicolons(tmp_path):
    path = tmp_path / "docs.csv"
    path.write_bytes("\ufeffid;text\nd1;Erste Zeile, mit Komma\nd2;zweite\n".encode("utf-8"))
    docs, notes = documents.read_upload(path, "line", None, None)
    assert [(d.id, d.text) for d in docs] == [("d1", "Erste Zeile, mit Komma"), ("d2", "zweite")]
    assert notes == []


def test_latin1_csv_is_read_with_a_note(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes("text\ncafé crème\nnaïve\n".encode("latin-1"))
    docs, notes = documents.read_upload(path, "line", "text", None)
    assert [d.text for d in docs] == ["café crème", "naïve"]
    assert "not UTF-8" in notes[0]


def test_tsv_and_explicit_columns(tmp_path):
    path = tmp_path / "docs.tsv"
    path.write_text("key\tbody\tother\nk1\thello, world\tx\nk2\tbye\ty\n", encoding="utf-8")
    docs, _ = documents.read_upload(path, "line", "body", "key")
    assert [(d.id, d.text, d.source) for d in docs] == [("k1", "hello, world", "docs.tsv"), ("k2", "bye", "docs.tsv")]


def test_missing_column_names_the_columns(tmp_path):
    path = tmp_path / "docs.csv"
    path.write_text("id,body\n1,x\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"no column 'text'.*'id', 'body'"):
        documents.read_upload(path, "line", "text", None)


def test_a_numeric_only_column_is_not_taken_as_text_without_saying_so(tmp_path):
    path = tmp_path / "docs.csv"  # long numbers: the longest column on average, but not text
    path.write_text("code,title\n1234567890123,a cat\n2234567890123,a dog\n", encoding="utf-8")
    docs, notes = documents.read_upload(path, "line", None, None)
    assert [d.text for d in docs] == ["a cat", "a dog"] and not notes
    docs, notes = documents.read_upload(path, "line", "code", None)  # chosen: taken, and said so
    assert [d.text for d in docs] == ["1234567890123", "2234567890123"]
    assert "'code' of docs.csv holds only numbers" in notes[0] and "'title'" in notes[0]
    only = tmp_path / "numbers.csv"
    only.write_text("a,b\n1,2.5\n3,4\n", encoding="utf-8")
    _, notes = documents.read_upload(only, "line", None, None)
    assert "holds only numbers" in notes[0]
    frame, _ = documents.read_table(path)
    with pytest.raises(InputError, match=r"Choose which column of docs.csv.*'code', 'title'"):
        documents.documents_from_table(frame, "", None, "docs.csv")


def test_empty_rows_are_reported_not_silently_dropped(tmp_path):
    path = tmp_path / "docs.csv"
    path.write_text("text\nfirst\n\"\"\nthird\n", encoding="utf-8")
    docs, notes = documents.read_upload(path, "line", "text", None)
    assert [d.text for d in docs] == ["first", "third"]
    assert "rows 2" in notes[0]


def test_jsonl_bad_line_is_named(tmp_path):
    path = tmp_path / "docs.jsonl"
    path.write_text('{"text": "a"}\n{"text": "b"\n"just text"\n', encoding="utf-8")
    with pytest.raises(InputError, match="line 2 is not JSON"):
        documents.read_upload(path, "line", "text", None)


def test_jsonl_objects_and_strings(tmp_path):
    path = tmp_path / "docs.jsonl"
    path.write_text('{"text": "a", "id": 7}\n\n"b"\n', encoding="utf-8")
    docs, _ = documents.read_upload(path, "line", "text", None)
    assert [d.text for d in docs] == ["a", "b"]


def test_json_list_under_a_key(tmp_path):
    path = tmp_path / "docs.json"
    path.write_text(json.dumps({"documents": [{"passage": "p one"}, {"passage": "p two"}]}), encoding="utf-8")
    docs, _ = documents.read_upload(path, "line", None, None)
    assert [d.text for d in docs] == ["p one", "p two"]


def test_xlsx_and_parquet(tmp_path):
    frame = pd.DataFrame({"doc_id": ["a", "b"], "content": ["alpha text", "beta text"]})
    frame.to_excel(tmp_path / "d.xlsx", index=False)
    frame.to_parquet(tmp_path / "d.parquet")
    for name in ("d.xlsx", "d.parquet"):
        docs, _ = documents.read_upload(tmp_path / name, "line", None, None)
        assert [(d.id, d.text) for d in docs] == [("a", "alpha text"), ("b", "beta text")], name


def test_png_renamed_txt_is_refused(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    with pytest.raises(InputError, match="PNG image, not text"):
        documents.read_upload(path, "line", None, None)


def test_binary_without_signature_is_refused(tmp_path):
    path = tmp_path / "blob.md"
    path.write_bytes(b"abc\x00\x01\x02" * 100)
    with pytest.raises(InputError, match="does not look like text"):
        documents.read_upload(path, "line", None, None)


def test_unsupported_suffix(tmp_path):
    path = tmp_path / "x.docx"
    path.write_bytes(b"PK\x03\x04")
    with pytest.raises(InputError, match=".docx files are not supported"):
        documents.read_upload(path, "line", None, None)


def test_broken_xlsx_is_a_clear_error(tmp_path):
    path = tmp_path / "broken.xlsx"
    path.write_bytes(b"this is not a workbook")
    with pytest.raises(InputError, match="could not be read as an Excel workbook"):
        documents.read_upload(path, "line", None, None)


def test_collect_combines_pasted_and_uploaded_and_flags_duplicates(tmp_path):
    path = tmp_path / "up.txt"
    path.write_text("uploaded one\n\nsame  text\n", encoding="utf-8")
    found = documents.collect("same text\nother", "line", path)
    assert [d.id for d in found.documents] == ["p1", "p2", "up.txt:1", "up.txt:2"]
    assert found.duplicates == {3: 0}
    assert "2 pasted" in found.summary() and "1 duplicate flagged" in found.summary()


def test_limits_have_clear_messages():
    with pytest.raises(InputError, match="10,000 documents is more than the 2,000"):
        documents.collect("\n".join(f"doc {i}" for i in range(10_000)), "line")
    with pytest.raises(InputError, match=r"Document p2 has 5,242,880 characters; the limit is 100,000"):
        documents.collect("short\n" + "x" * (5 * 2**20), "line")
