"""Streamlit page script: Fraude."""

from pulso.dashboard.fraud_page import render

render()
