"""Streamlit page script: Pedidos."""

from pulso.dashboard.orders_page import render

render()
