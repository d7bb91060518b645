"""The model-server SDK: subclass `Model`, and `bench serve` does the rest."""
from ctbench.model_servers.sdk.model import Model, QuestionItem
from ctbench.model_servers.sdk.model_card import ModelCard
from ctbench.model_servers.sdk.server import ModelServer, ServerOptions, serve
from ctbench.preprocess.input_spec import InputSpec

__all__ = ["InputSpec", "Model", "ModelCard", "ModelServer", "QuestionItem", "ServerOptions", "serve"]
