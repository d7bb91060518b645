"""The model-server SDK: subclass `Model`, and `bench serve` does the rest."""
from ctbench.model_servers.sdk.model import Model, QuestionItem
from ctbench.model_servers.sdk.server import ModelServer, ServerOptions, serve

__all__ = ["Model", "ModelServer", "QuestionItem", "ServerOptions", "serve"]
