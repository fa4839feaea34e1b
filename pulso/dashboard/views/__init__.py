"""The page scripts st.navigation runs (each calls its page module's ``render``); not imported."""
