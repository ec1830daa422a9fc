"""Privacy records: every erasure of a viewer's events, who asked and what it removed."""
