"""pairchat terminal UI (Textual) and the shared HTTP client."""
