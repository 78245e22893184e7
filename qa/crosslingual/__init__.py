"""Cross-lingual helpers: what carries a question in one language to text in another."""
