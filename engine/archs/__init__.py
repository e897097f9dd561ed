"""The five papers' networks as pure ``nn.Module`` classes (no weights, no I/O, no Qt).

One module per paper (``s0_srresnet_att``, ``s1_mffcn``, ``s2_rafsr``, ``s3_prior_guided``,
``s4_idrn``), the shared SRGAN discriminator (``discriminators``) and the few blocks they share
(``common``). The registry imports them by path; nothing is imported here, so importing
``engine.archs`` stays cheap.
"""
