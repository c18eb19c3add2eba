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

from importer import store  # noqa: E402
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
# Who is using the dashboard: the owner of what they upload and whose runs they may delete. Claimed, not
# authenticated (docs/team-store.md); the store layer enforces the deletion rule for whoever is claimed.
USER_KEY = "dashboard_user"
if USER_KEY not in st.session_state:
    st.session_state[USER_KEY] = store.current_user()
with st.sidebar:
    st.text_input("You are", key=USER_KEY, help="Owner of the runs you upload; you may delete only your own runs "
                  "(admins: any). The name is taken on trust, as on the command line (LAYERJOULE_USER).")
    st.caption(f"Store: `{store.describe()}`")

if "flash" in st.session_state:  # a message from the previous page (e.g. a deleted run), shown once
    st.toast(st.session_state.pop("flash"))

try:
    page.run()
except InputError as error:
    st.error(f"Cannot read the store: {error}")
