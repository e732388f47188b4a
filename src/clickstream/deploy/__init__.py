"""Shipping the pipeline to where the data lives (Spark job artifact; AWS resources later)."""
