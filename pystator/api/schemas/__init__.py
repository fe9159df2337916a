"""Request and response models of the HTTP API (pydantic), separate from the SQL rows."""
