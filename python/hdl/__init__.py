from hdl._C import isa
