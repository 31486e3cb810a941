"""Imported first by the benchmarks that time one request per thread, as the server runs it.

FAISS and BLAS must not fan a single query out over OpenMP threads (``thread_time`` would then
miss that work), and their thread counts are read when they load: so this module sets them
before numpy, FAISS or the project are imported, and puts the project root on ``sys.path``
(the benchmark's own folder is there already, as the script's).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
