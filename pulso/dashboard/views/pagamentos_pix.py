"""Streamlit page script: Pagamentos PIX."""

from pulso.dashboard.payments_page import render

render()
