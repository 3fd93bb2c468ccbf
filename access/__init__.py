"""Who may call: API keys, their store, and the verification the edges share (DESIGN inv. 13)."""
