"""Every layer of hdl, one protocol (hdl.layers.base.Layer): fully connected (Dense, FullyConnected),
convolution, pooling, activations, dropout, flatten. A user's layer subclasses Layer and is
registered by name for Model.load. Each module's __all__ says what it adds here, so a new layer is
written in its module alone."""
from hdl.layers.base import LAYER_TYPES as LAYER_TYPES  # `as`: exported to type checkers (__all__ is computed)
from hdl.layers.base import Layer as Layer
from hdl.layers.base import layer_type as layer_type
from hdl.layers.base import register as register
from hdl.layers.conv import *  # noqa: F401,F403
from hdl.layers.conv import __all__ as _conv
from hdl.layers.dense import *  # noqa: F401,F403
from hdl.layers.dense import __all__ as _dense
from hdl.layers.pointwise import *  # noqa: F401,F403
from hdl.layers.pointwise import __all__ as _pointwise
from hdl.layers.pool import *  # noqa: F401,F403
from hdl.layers.pool import __all__ as _pool

__all__ = sorted(["LAYER_TYPES", "Layer", "layer_type", "register", *_conv, *_dense, *_pointwise, *_pool])
