"""Dashboard entry file: `streamlit run app/main.py` or `layerjoule app [--db PATH]`, from any directory.

The store is importer.store.resolve_db_path(): the LAYERJOULE_DB environment variable, else the default store.
"""

from __future__ import annotations

import sys
from pathlib import Path

try:
    import app.queries  # noqa: F401
except ImportError:
    # A plain checkout without the package installed: the repository root holds app/ and importer/.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import streamlit as st  # noqa: E402

from importer.errors import InputError  # noqa: E402

# Not "pages/": Streamlit would also list that folder as pages of its own, beside st.navigation.
PAGES_DIR = Path(__file__).resolve().parent / "views"

st.set_page_config(page_title="layerjoule", layout="wide")

page = st.navigation(
    [
        st.Page(PAGES_DIR / "runs.py", title="Runs", url_path="runs", default=True),
        st.Page(PAGES_DIR / "run.py", title="Run", url_path="run"),
    ]
)
try:
    page.run()
except InputError as error:
    st.error(f"Cannot read the store: {error}")
