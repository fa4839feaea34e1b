"""The dashboard's Streamlit entry script: ``streamlit run pulso/dashboard/app.py``
(``pulso dashboard`` does it for you). Five pages (Vendas, Pagamentos PIX, Pedidos,
Marketplace, Fraude), all reading the HTTP API only."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

VIEWS = Path(__file__).resolve().parent / "views"


def main() -> None:
    st.set_page_config(page_title="pulso · painel", page_icon="📈", layout="wide")
    pages = [
        st.Page(VIEWS / "vendas.py", title="Vendas", icon=":material/point_of_sale:", default=True),
        st.Page(VIEWS / "pagamentos_pix.py", title="Pagamentos PIX", icon=":material/qr_code_2:"),
        st.Page(VIEWS / "pedidos.py", title="Pedidos", icon=":material/shopping_cart:"),
        st.Page(VIEWS / "marketplace.py", title="Marketplace", icon=":material/storefront:"),
        st.Page(VIEWS / "fraude.py", title="Fraude", icon=":material/gpp_maybe:"),
    ]
    st.navigation(pages).run()


if __name__ == "__main__":
    main()
