"""fal-assets: consistent character art at scale through fal.ai FLUX.2.

A plain Python library. It never imports dagster; the Dagster layer lives in
``dagster_project`` and calls into this package.
"""

__version__ = "0.1.0"
