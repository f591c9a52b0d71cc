"""mmpmodel: networks (MMP-Net, MMP-RNN), losses, metrics, profiling, training, evaluation and inference."""
