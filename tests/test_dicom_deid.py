"""DICOM de-identification (PS3.15 Basic Profile, Modified Dates option): every attribute of the profile's table
is planted with a recognisable value, nested in a sequence too; none of those values may survive."""
from __future__ import annotations

import datetime as dt
import io

import pydicom
import pytest
from dicomanonymizer.dicom_anonymization_databases import dicomfields_2026c as table
from pydicom.data import get_testdata_file
from pydicom.datadict import dictionary_VR
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from app.dicom.deid import ACTIONS, Key, deidentify, new_uid, pseudonym

KEY = Key("a-test-secret-of-the-project-0123456789", -400)
SENTINEL = "SECRET"
PROFILE = [t for t in table.ALL_TAGS if len(t) == 2]


def plant(tag: int, ds: Dataset) -> None:
    """A value that is unmistakably the original, of the attribute's VR (unknown attributes as LO)."""
    try:
        vr = dictionary_VR(tag)
    except KeyError:
        vr = "LO"
    vr = vr.split(" or ")[0]
    values = {"DA": "20200315", "DT": "20200315101112", "TM": "101112", "UI": "1.2.3.4.5.6789",
              "PN": f"{SENTINEL}^PATIENT", "AS": "042Y", "DS": "12.5", "IS": "42", "US": 42, "SS": -42,
              "UL": 42, "SL": -42, "FL": 4.5, "FD": 4.5, "OB": SENTINEL.encode() * 2, "OW": SENTINEL.encode() * 2,
              "UN": SENTINEL.encode() * 2, "CS": SENTINEL, "AE": SENTINEL, "UR": f"http://{SENTINEL}.example"}
    if vr == "SQ":
        inner = Dataset()
        inner.PatientName = f"{SENTINEL}^INNER"
        ds.add_new(tag, "SQ", Sequence([inner]))
    else:
        ds.add_new(tag, vr, values.get(vr, f"{SENTINEL} value"))


def full_dataset() -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    for g, e in PROFILE:
        plant((g << 16) | e, ds.file_meta if g == 0x0002 else ds)
    ds.add_new(0x50000010, "US", 7)               # curve data group
    ds.add_new(0x60003000, "OW", b"\x01\x02")      # overlay data
    ds.add_new(0x60004000, "LT", SENTINEL)         # overlay comments
    block = ds.private_block(0x0029, "ACME", create=True)
    block.add_new(0x10, "LO", f"{SENTINEL} private")
    # a sequence outside the profile that carries profile attributes and private ones
    item = Dataset()
    for g, e in PROFILE[:80]:
        plant((g << 16) | e, item)
    item.add_new(0x00091001, "LO", f"{SENTINEL} nested private")
    ds.add_new(0x00082218, "SQ", Sequence([item]))  # Anatomic Region Sequence: not in the profile
    ds.Modality, ds.BodyPartExamined = "XC", "SKIN"
    return ds


def check(ds: Dataset, path: str = "") -> None:
    for elem in ds:
        where = f"{path}{elem.tag}"
        assert not elem.tag.is_private, f"private attribute {where} survived"
        group = elem.tag.group
        assert not (group & 0xFF00 == 0x5000), f"curve data {where} survived"
        assert not (group & 0xFF00 == 0x6000 and elem.tag.element in (0x3000, 0x4000)), f"overlay {where} survived"
        if elem.VR == "SQ":
            for item in elem.value:
                check(item, where + "/")
            continue
        action = ACTIONS.get(int(elem.tag))
        if action is None:
            continue
        value = elem.value
        text = value.decode("latin-1") if isinstance(value, bytes) else str(value if value is not None else "")
        assert action != "X" or elem.VR in ("DA", "DT", "TM"), f"{where} should have been removed"
        assert SENTINEL not in text, f"{where} ({elem.keyword}) kept its value {text!r}"
        if elem.VR == "UI" and text:
            assert text.startswith("2.25.") and "1.2.3.4.5.6789" not in text
        if elem.VR == "DA" and text:
            assert text == (dt.date(2020, 3, 15) + dt.timedelta(days=KEY.date_offset_days)).strftime("%Y%m%d")
        if elem.VR == "DT" and text:
            assert text.startswith((dt.date(2020, 3, 15) + dt.timedelta(days=-400)).strftime("%Y%m%d"))
        if elem.VR == "AS":
            assert text in ("", "000Y")
        if elem.VR in ("US", "SS", "UL", "SL", "FL", "FD", "IS", "DS") and text:
            assert float(text) == 0, f"{where} kept the number {text}"


def test_no_attribute_of_the_profile_survives():
    ds = full_dataset()
    assert len(PROFILE) > 600  # the whole table was planted, not a sample
    report = deidentify(ds, KEY)
    check(ds)
    assert "PatientBirthDate" not in ds or not ds.PatientBirthDate  # birth date removed, never shifted
    assert not ds.PatientName
    assert ds.Modality == "XC" and ds.BodyPartExamined == "SKIN"  # not identifying: kept
    assert ds.PatientIdentityRemoved == "YES" and ds.LongitudinalTemporalInformationModified == "MODIFIED"
    assert {c.CodeValue for c in ds.DeidentificationMethodCodeSequence} == {"113100", "113107"}
    assert report.private_removed == 3  # the private creator, its attribute, and the nested one
    # the record says what was done by tag and keyword, never the value that was there
    assert {"tag": "(0010,0010)", "keyword": "PatientName", "action": "emptied"} in report.actions
    assert all(SENTINEL not in str(a) for a in report.actions)
    # and written out, no planted value is anywhere in the file's bytes
    out = io.BytesIO()
    check(ds.file_meta)
    ds.preamble = b"\0" * 128
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.save_as(out, implicit_vr=False, little_endian=True)
    assert SENTINEL.encode() not in out.getvalue()
    assert b"1.2.3.4.5.6789" not in out.getvalue()


def test_uids_are_remapped_consistently_within_a_project_and_differently_across():
    study, series = generate_uid(), generate_uid()
    a, b = Dataset(), Dataset()
    for ds in (a, b):
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID = study, series, generate_uid()
        ds.PatientID = "MRN-0042"
        ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.77.1.4"
    deidentify(a, KEY)
    deidentify(b, KEY)
    assert a.StudyInstanceUID == b.StudyInstanceUID == new_uid(KEY, study) != study
    assert a.SeriesInstanceUID == b.SeriesInstanceUID != series
    assert a.SOPInstanceUID != b.SOPInstanceUID  # two instances stay two
    assert a.SOPClassUID == "1.2.840.10008.5.1.4.1.1.77.1.4"  # a class UID identifies no one: kept
    assert a.PatientID == b.PatientID == pseudonym(KEY, "MRN-0042") and "0042" not in a.PatientID
    assert all(len(u) <= 64 for u in (a.StudyInstanceUID, a.SeriesInstanceUID, a.SOPInstanceUID))
    other = Dataset()
    other.StudyInstanceUID = study
    deidentify(other, Key("another-project-secret-0123456789abcdef", -30))
    assert other.StudyInstanceUID != a.StudyInstanceUID


@pytest.mark.parametrize("name", ["CT_small.dcm", "MR_small.dcm", "examples_ybr_color.dcm"])
def test_real_files_keep_no_patient_data(name):
    ds = pydicom.dcmread(get_testdata_file(name))
    before = {k: str(ds.get(k, "")) for k in ("PatientName", "PatientID", "StudyInstanceUID")}
    deidentify(ds, KEY)
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    for k, v in before.items():
        if len(v) > 3:
            assert v.encode() not in out.getvalue(), f"{k} {v!r} is still in the file"
    again = pydicom.dcmread(io.BytesIO(out.getvalue()))
    assert not again.get("InstitutionName") and not again.get("PatientName")
    assert again.file_meta.MediaStorageSOPInstanceUID == again.SOPInstanceUID
