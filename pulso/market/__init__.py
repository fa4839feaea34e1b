"""The marketplace monitor: Mercado Livre best-seller snapshots, their history, trends and
top-N alerts. ``sync.py`` takes snapshots, ``history.py`` keeps them in the store,
``trends.py`` reads movement out of them (pure), ``alerts.py`` finds top-N entries (pure)."""
