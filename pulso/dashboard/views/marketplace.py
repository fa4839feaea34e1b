"""Streamlit page script: Marketplace."""

from pulso.dashboard.market_page import render

render()
