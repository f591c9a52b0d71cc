"""mmpdata: everything before a tensor reaches a network (footage, CRFs, blur, flow, MMP, HDF5 format)."""

__version__ = "0.1.0"
