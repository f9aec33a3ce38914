"""DICOM for the tests: pydicom's bundled files, a dermatology VL Photographic image made here (JPEG in DICOM,
with a patient in its header), and a real Orthanc with its DICOMweb plugin on loopback."""
from __future__ import annotations

import io
import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
from PIL import Image
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import JPEGBaseline8Bit, generate_uid

from conftest import free_port

ORTHANC = Path("/usr/sbin/Orthanc")
DICOMWEB_PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")
VL_PHOTOGRAPHIC = "1.2.840.10008.5.1.4.1.1.77.1.4"
PATIENT = {"PatientName": "Doe^Jane", "PatientID": "MRN-778899", "PatientBirthDate": "19700101",
           "InstitutionName": "St Elsewhere Dermatology", "ReferringPhysicianName": "House^Gregory",
           "PatientAddress": "12 Secret Lane"}


def bundled(name: str) -> bytes:
    return Path(get_testdata_file(name)).read_bytes()


def vl_photograph(colour=(190, 120, 100), size=(320, 240), study_uid: str | None = None,
                  texture: bool = False) -> bytes:
    """A dermatology photograph as DICOM VL Photographic Image Storage: a JPEG, YBR_FULL_422, one frame (with
    texture: noise, so the JPEG is as large as a real photograph's)."""
    jpeg = io.BytesIO()
    img = Image.effect_noise(size, 40).convert("RGB") if texture else Image.new("RGB", size, colour)
    img.save(jpeg, "JPEG", quality=90)
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = VL_PHOTOGRAPHIC
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID = generate_uid()
    ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    ds.SOPClassUID = VL_PHOTOGRAPHIC
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid or generate_uid(), generate_uid()
    for k, v in PATIENT.items():
        setattr(ds, k, v)
    ds.StudyDate, ds.ContentDate, ds.ContentTime = "20240506", "20240506", "101500"
    ds.Modality, ds.BodyPartExamined, ds.ImageLaterality = "XC", "SKIN", "L"
    ds.Rows, ds.Columns = size[1], size[0]
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "YBR_FULL_422", 0
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PixelData = encapsulate([jpeg.getvalue()])
    ds["PixelData"].VR = "OB"
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


class Orthanc:
    """Orthanc with DICOMweb, its own storage in a temporary folder, HTTP on a free loopback port."""

    def __init__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="orthanc-"))
        self.port = free_port()
        config = {"Name": "DermLabelTest", "StorageDirectory": str(self.dir / "db"),
                  "IndexDirectory": str(self.dir / "db"), "HttpPort": self.port, "DicomServerEnabled": False,
                  "RemoteAccessAllowed": False, "AuthenticationEnabled": False,
                  "Plugins": [str(DICOMWEB_PLUGIN)], "DicomWeb": {"Enable": True, "Root": "/dicom-web/"}}
        (self.dir / "orthanc.json").write_text(json.dumps(config))
        self.log = open(self.dir / "log", "wb")
        self.proc = subprocess.Popen([str(ORTHANC), str(self.dir / "orthanc.json")], cwd=self.dir,
                                     stdout=self.log, stderr=subprocess.STDOUT)
        self.url = f"http://127.0.0.1:{self.port}"
        self.dicomweb = f"{self.url}/dicom-web"
        for _ in range(200):
            try:
                if httpx.get(f"{self.url}/system", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("Orthanc did not start: " + (self.dir / "log").read_text()[-2000:])

    def store(self, raw: bytes) -> dict:
        r = httpx.post(f"{self.url}/instances", content=raw, timeout=30)
        r.raise_for_status()
        return r.json()

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)
