"""A tiny Streamlit page for tests/test_app_state_export.py: three widgets bound to the URL, a chart, a table."""

import altair as alt
import pandas as pd
import streamlit as st

from app import export, state

OPTIONS = ["a", "b", "c"]
choice_binding = state.bind("x", "x_key", options=OPTIONS, default="b")
choice = st.selectbox("X", OPTIONS, **choice_binding)
state.publish("x", "x_key")
picked = st.multiselect("M", OPTIONS, **state.bind("m", "m_key", options=OPTIONS, multi=True))
state.publish("m", "m_key", multi=True)
span = st.slider("R", 0, 100, **state.bind("r", "r_key", multi=True, convert=int, as_tuple=True, default=(10, 20)))
state.publish("r", "r_key", multi=True)
st.markdown(f"x={choice} m={','.join(picked)} r={span[0]}-{span[1]} invalid={','.join(choice_binding.invalid)}")
frame = pd.DataFrame({"layer": ["conv1", "fire2"], "energy_mj": [1.5, 0.25]})
export.show_chart(alt.Chart(frame).mark_bar().encode(x="energy_mj", y="layer"), "energy chart", "chart")
export.show_table(frame, "layers", "table")
