"""Streamlit page script: Vendas."""

from pulso.dashboard.sales_page import render

render()
