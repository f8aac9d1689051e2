"""The model bundle: format and manifest (format.py), verified loading (loader.py)."""
from heisd_ros.bundle.format import BundleError
from heisd_ros.bundle.loader import Bundle, load_bundle

__all__ = ["Bundle", "BundleError", "load_bundle"]
