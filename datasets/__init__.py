from ctbench.project import require_import_name

require_import_name(__name__, __file__)
