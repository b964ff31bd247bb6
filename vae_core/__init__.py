"""VAE Lab's engine: models, data, training runs, the model store and exploration.

Never imports streamlit; everything here works and is tested without a browser.
"""

from vae_core.errors import UserError

__all__ = ["UserError"]
