"""Analytics computed inside the store engine: KPIs, summaries, heatmaps, queries."""
