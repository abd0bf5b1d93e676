"""The engine: :class:`FaceSearch`, a facade over one module per job (search, ingest,
maintenance, governance) working on the parts of one open home (home.py), built by
facesearch.parts."""

from facesearch.domain import ImageRecord
from facesearch.engine.facade import FaceSearch
from facesearch.engine.governance import MAX_URL_REPORT_IMAGES
from facesearch.engine.search import OVERFETCH, Probe

__all__ = ["MAX_URL_REPORT_IMAGES", "OVERFETCH", "FaceSearch", "ImageRecord", "Probe"]
