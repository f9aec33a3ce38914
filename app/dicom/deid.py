"""DICOM de-identification: the PS3.15 Basic Application Level Confidentiality Profile, with the Retain
Longitudinal Temporal Information with Modified Dates option (dates shifted by a per-project offset).

The profile's attribute list (Table E.1-1, 2026c edition) is the transcription kept by the dicom-anonymizer
package; what each action does here, and the options, are ours:
  X remove · Z empty · D dummy value · U UID re-mapped · combinations take the weakest removal that keeps the
  file valid (X/Z → Z, X/D → D, Z/D → Z, X/Z/D → Z) · every DA/DT value of the profile is shifted instead ·
  private attributes, curves and overlay comments/data removed.
UIDs are re-mapped with a keyed hash (per-project secret), so the same source UID always gets the same new UID in
a project — series stay series across uploads — and nothing outside the database can reverse it. The patient ID
becomes a keyed pseudonym, so images of one patient stay together (ML splits by patient need it)."""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from dataclasses import dataclass, field

from dicomanonymizer.dicom_anonymization_databases import dicomfields_2026c as table
from pydicom.datadict import keyword_for_tag
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.tag import Tag

PROFILE_EDITION = "PS3.15 2026c Table E.1-1"

_REMOVE, _EMPTY, _DUMMY, _UID = "X", "Z", "D", "U"
ACTIONS: dict[int, str] = {}
for _tags, _action in ((table.X_TAGS, _REMOVE), (table.Z_TAGS, _EMPTY), (table.D_TAGS, _DUMMY),
                       (table.U_TAGS, _UID), (table.X_Z_TAGS, _EMPTY), (table.X_D_TAGS, _DUMMY),
                       (table.Z_D_TAGS, _EMPTY), (table.X_Z_D_TAGS, _EMPTY), (table.X_Z_U_STAR_TAGS, _UID)):
    for _t in _tags:
        if len(_t) == 2:
            ACTIONS[Tag(_t[0], _t[1])] = _action
# (group, element, group mask, element mask): curve data 50xx,xxxx; overlay data and comments 60xx,3000/4000
MASKED = [t for t in table.ALL_TAGS if len(t) == 4]

# dates that identify the patient rather than date the study: removed, never shifted
NOT_SHIFTED = {Tag(0x0010, 0x0030), Tag(0x0010, 0x0032), Tag(0x0010, 0x21D0)}  # birth date, birth time, last menses
PATIENT_ID = Tag(0x0010, 0x0020)
DUMMY = {"PN": "ANONYMOUS", "LO": "ANONYMIZED", "SH": "ANONYMIZED", "CS": "ANONYMIZED", "ST": "ANONYMIZED",
         "LT": "ANONYMIZED", "UT": "ANONYMIZED", "UC": "ANONYMIZED", "AE": "ANONYMIZED", "UR": "",
         "AS": "000Y", "DS": "0", "IS": "0"}  # TM: kept (dates shift by whole days)


@dataclass
class Key:
    """A project's de-identification key: kept in the database (api.dicom_deid_key), never in the files."""
    secret: str
    date_offset_days: int


@dataclass
class Report:
    actions: list[dict] = field(default_factory=list)  # what was done, by tag and keyword, never the old value
    private_removed: int = 0
    patient_pseudonym: str | None = None

    def note(self, tag: int, action: str) -> None:
        self.actions.append({"tag": f"({tag >> 16:04X},{tag & 0xFFFF:04X})",
                             "keyword": keyword_for_tag(tag) or "", "action": action})


def new_uid(key: Key, uid: str) -> str:
    """The project's stand-in for a UID: 2.25 + a 128-bit keyed hash (PS3.5 B.2 UUID-derived form)."""
    digest = hmac.new(key.secret.encode(), b"uid:" + uid.strip("\x00 ").encode(), hashlib.sha256).digest()
    return "2.25." + str(int.from_bytes(digest[:16], "big"))


def pseudonym(key: Key, patient_id: str) -> str:
    digest = hmac.new(key.secret.encode(), b"patient:" + patient_id.strip().encode(), hashlib.sha256).hexdigest()
    return "DL-" + digest[:16].upper()


def _shift(value: str, vr: str, days: int) -> str:
    """A DA (YYYYMMDD) or DT (YYYYMMDDHHMMSS.FFFFFF&ZZXX) value moved by whole days; the time of day is kept."""
    value = value.strip()
    if len(value) < 8 or not value[:8].isdigit():
        return ""  # not a date we can read: better empty than left
    try:
        day = dt.date(int(value[:4]), int(value[4:6]), int(value[6:8])) + dt.timedelta(days=days)
    except ValueError:
        return ""
    return day.strftime("%Y%m%d") + (value[8:] if vr == "DT" else "")


def _masked(tag: int) -> bool:
    group, element = tag >> 16, tag & 0xFFFF
    return any(group & gm == g and element & em == e for g, e, gm, em in MASKED)


def _apply(ds: Dataset, key: Key, report: Report) -> None:
    for elem in list(ds):
        tag = int(elem.tag)
        if elem.tag.is_private:
            del ds[elem.tag]
            report.private_removed += 1
            continue
        if _masked(tag) or tag >> 16 == 0:  # command-set elements have no place in a stored file either
            del ds[elem.tag]
            report.note(tag, "removed")
            continue
        action = ACTIONS.get(tag)
        if tag == PATIENT_ID and elem.value:
            report.patient_pseudonym = elem.value = pseudonym(key, str(elem.value))
            report.note(tag, "pseudonymised")
            continue
        if action is None:
            if elem.VR == "SQ":  # sequences outside the profile can still hold profile attributes
                for item in elem.value:
                    _apply(item, key, report)
            continue  # class UIDs, pixel data, modality, body part …: not identifying, kept
        if elem.VR in ("DA", "DT") and tag not in NOT_SHIFTED:
            values = elem.value if elem.VM > 1 else [elem.value]
            shifted = [_shift(str(v), elem.VR, key.date_offset_days) for v in values if v]
            elem.value = shifted if len(shifted) > 1 else (shifted[0] if shifted else "")
            report.note(tag, "date shifted")
        elif elem.VR == "TM" and tag not in NOT_SHIFTED:
            report.note(tag, "kept (time of day; the dates are shifted)")
        elif action == _REMOVE:
            del ds[elem.tag]
            report.note(tag, "removed")
        elif elem.VR == "SQ" and action == _UID:  # e.g. Referenced Image Sequence: its UIDs, re-mapped
            for item in elem.value:
                _apply(item, key, report)
            report.note(tag, "UIDs re-mapped")
        elif elem.VR == "UI":
            values = elem.value if elem.VM > 1 else [elem.value]
            mapped = [new_uid(key, str(v)) for v in values if v]
            elem.value = mapped if len(mapped) > 1 else (mapped[0] if mapped else "")
            report.note(tag, "UID re-mapped")
        elif action == _DUMMY and elem.VR not in ("SQ", "OB", "OW", "UN", "US", "SS", "UL", "SL", "FL", "FD"):
            elem.value = DUMMY.get(elem.VR, "")
            report.note(tag, "replaced with a dummy value")
        else:  # Z, and D where no dummy of that VR means anything: empty (sequences lose their items)
            elem.value = Sequence() if elem.VR == "SQ" else None
            report.note(tag, "emptied")


def deidentify(ds: Dataset, key: Key) -> Report:
    """De-identify ds in place (file meta included) and mark it as de-identified; returns what was done."""
    report = Report()
    _apply(ds, key, report)
    meta = getattr(ds, "file_meta", None)
    if meta is not None:
        _apply(meta, key, report)
    if meta is not None and "MediaStorageSOPInstanceUID" in meta:
        meta.MediaStorageSOPInstanceUID = ds.get("SOPInstanceUID") or new_uid(key, meta.MediaStorageSOPInstanceUID)
    ds.PatientIdentityRemoved = "YES"
    ds.LongitudinalTemporalInformationModified = "MODIFIED"
    ds.DeidentificationMethod = f"DermLabel: {PROFILE_EDITION}, Modified Dates"  # LO: at most 64 characters
    codes = []
    for value, meaning in (("113100", "Basic Application Confidentiality Profile"),
                           ("113107", "Retain Longitudinal Temporal Information Modified Dates Option")):
        code = Dataset()
        code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = value, "DCM", meaning
        codes.append(code)
    ds.DeidentificationMethodCodeSequence = Sequence(codes)
    return report
