"""Scale-out on Ray: distributed feature extraction, batch prediction and data-parallel training.

- :func:`extract_to_cache` (``extract.py``): a Ray Data pipeline (file list -> read and
  preprocess -> an actor pool of extractors) that fills the same content-keyed
  ``FeatureCache`` as ``sertk extract``.
- :func:`predict_files` (``predict.py``): batch prediction with an actor pool of
  ``Recognizer``s into a resumable Parquet/CSV/JSONL file (``results.py``).
- :func:`ray_training` (``train.py``): runs ``sertk.training``'s data-parallel workers as
  Ray Train workers (``TorchTrainer``), for ``sertk train --engine ray``.
- ``cluster.py``: ``connect`` (a private local cluster, ``auto`` or ``HOST:PORT``), the only
  ``ray.init`` in sertk.

Ray is an optional extra (``pip install 'sertk[ray]'``): importing this package does not import
it; each entry point does, and says how to install it when it is missing.
"""

from sertk.scale.cluster import connect, require_ray
from sertk.scale.extract import ExtractSummary, extract_to_cache
from sertk.scale.predict import PredictSummary, predict_files
from sertk.scale.train import ray_training

__all__ = [
    "ExtractSummary",
    "PredictSummary",
    "connect",
    "extract_to_cache",
    "predict_files",
    "ray_training",
    "require_ray",
]
