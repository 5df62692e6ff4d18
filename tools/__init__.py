"""FHIR R4 client, record summaries and the LangChain tools the graph calls (issue 3; nothing here yet)."""

__all__: list[str] = []
