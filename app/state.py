"""A page's view state in its URL, so that a link a colleague sends opens the same view.

Each widget that is part of the view is bound to one query parameter:

    value = st.selectbox("Run", run_ids, **state.bind("run", "run_select", options=run_ids))
    state.publish("run", "run_select")

bind() runs before the widget: a valid value in the URL decides what the widget shows, and the widget's
on_change callback writes a new choice back to the URL (callbacks run before the script, so the URL never
overrides what the user just picked). publish() runs after it and puts the widget's current value (its default
on a first visit) into the URL. A list (multiselect, range slider) is a repeated parameter: ?run=a&run=b.
A value in the URL that is not among the options is dropped, and bind() returns it in `invalid` for a message.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import streamlit as st


def _text(value: Any) -> str:
    return value if isinstance(value, str) else str(value)


def _from_url(param: str, multi: bool) -> list[str] | str | None:
    if param not in st.query_params:
        return None
    return st.query_params.get_all(param) if multi else st.query_params.get(param)


def _to_url(param: str, value: Any, multi: bool) -> None:
    if value is None or (multi and len(value) == 0):
        if param in st.query_params:
            del st.query_params[param]
        return
    text = [_text(v) for v in value] if multi else _text(value)
    current = st.query_params.get_all(param) if multi else st.query_params.get(param)
    if current != text:
        st.query_params[param] = text


def _publish_callback(key: str, param: str, multi: bool) -> None:
    _to_url(param, st.session_state.get(key), multi)


class Binding(dict):
    """Keyword arguments for the widget (key, on_change, args), plus the URL values that were not valid."""

    invalid: list[str]


def bind(
    param: str,
    key: str,
    *,
    options: Iterable[Any] | None = None,
    multi: bool = False,
    convert: Callable[[str], Any] = str,
    as_tuple: bool = False,
    default: Any = None,
) -> Binding:
    """Before the widget: restore its value from the URL; returns the widget's key and on_change arguments.

    options: the valid values (None: any value `convert` accepts). convert: URL text to the widget's value type.
    as_tuple: the widget's value is a tuple (a range slider), not a list (a multiselect).
    default: the widget's value on a first visit. Give it here, not to the widget: Streamlit warns when a widget
    gets both a default and a value set through session state.
    """
    binding = Binding(key=key, on_change=_publish_callback, args=(key, param, multi))
    binding.invalid = []
    raw = _from_url(param, multi)
    if raw is None:
        _apply_default(key, default)
        return binding
    allowed = None if options is None else list(options)
    values = []
    for text in raw if multi else [raw]:
        try:
            value = convert(text)
        except (TypeError, ValueError):
            binding.invalid.append(text)
            continue
        if allowed is not None:
            # Match by text so that 3 in the URL finds the option 3 and "a" finds "a".
            matches = [option for option in allowed if _text(option) == _text(value)]
            if not matches:
                binding.invalid.append(text)
                continue
            value = matches[0]
        values.append(value)
    if multi:
        wanted: Any = tuple(values) if as_tuple else values
    elif values:
        wanted = values[0]
    else:
        _apply_default(key, default)  # nothing valid in the URL: as on a first visit
        return binding
    if st.session_state.get(key) != wanted:
        st.session_state[key] = wanted
    return binding


def _apply_default(key: str, default: Any) -> None:
    if default is not None and st.session_state.get(key) is None:
        st.session_state[key] = default


def publish(param: str, key: str, *, multi: bool = False) -> None:
    """After the widget: its current value goes into the URL (on a first visit, its default)."""
    _to_url(param, st.session_state.get(key), multi)


def url_list(param: str) -> list[str]:
    """All values of a repeated query parameter (?run=a&run=b), for pages that read state without a widget."""
    return st.query_params.get_all(param)
