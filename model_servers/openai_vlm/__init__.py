"""Any OpenAI-compatible multimodal chat endpoint (OpenAI, vLLM, SGLang, ...) as a model server."""
