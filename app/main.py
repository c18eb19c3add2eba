"""Dashboard entry file: `streamlit run app/main.py` or `layerjoule app [--db PATH]`, from any directory.

The store is importer.store.resolve_db_path(): the LAYERJOULE_DB environment variable, else the default store.
Every page keeps its view in the URL (app/state.py), so a link opens the same view for a colleague.
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
        st.Page(PAGES_DIR / "overview.py", title="Overview", url_path="overview", default=True,
                icon=":material/scatter_plot:"),
        st.Page(PAGES_DIR / "run.py", title="Run", url_path="run", icon=":material/bar_chart:"),
        st.Page(PAGES_DIR / "compare.py", title="Compare", url_path="compare", icon=":material/compare_arrows:"),
        st.Page(PAGES_DIR / "efficiency.py", title="Efficiency", url_path="efficiency", icon=":material/speed:"),
        st.Page(PAGES_DIR / "models.py", title="Models", url_path="models", icon=":material/account_tree:"),
        st.Page(PAGES_DIR / "upload.py", title="Upload", url_path="upload", icon=":material/upload:"),
    ]
)
try:
    page.run()
except InputError as error:
    st.error(f"Cannot read the store: {error}")
