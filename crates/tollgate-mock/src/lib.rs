//! A mock LLM provider server (being built).
