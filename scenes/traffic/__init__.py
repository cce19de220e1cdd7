"""Traffic scenes (issue 14): road maps with signalised junctions, crosswalks and weather.

Three worlds share the latent names of ``scenes/catalog/traffic``: ``traffic/embedded`` (:mod:`.world`: a
vectorised numpy simulator, Intelligent Driver Model car following with a reaction-time delay, MOBIL lane
changes, fixed-time signals and pedestrians, filmed by a numpy top-down raster and a PyBullet TinyRenderer
dashcam on the ego car) and ``traffic/carla`` (a CARLA 0.9.16 client backend for users with a server).
"""
