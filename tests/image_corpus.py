"""The corrupt-image corpus of :mod:`sim.image_corpus` as a hypothesis strategy."""

from hypothesis import strategies as st

from sim.image_corpus import corpus_networks, corrupt_image, sections, set_field, small_config, with_crc

__all__ = ["SMALL_CONFIG", "baked_and_other", "corrupt_images", "sections", "set_field", "with_crc"]

SMALL_CONFIG = small_config()
baked_and_other = corpus_networks


class _DrawPicker:
    def __init__(self, draw):
        self.draw = draw

    def integer(self, low, high):
        return self.draw(st.integers(low, high))

    def choice(self, options):
        return self.draw(st.sampled_from(list(options)))

    def binary(self, low, high):
        return self.draw(st.binary(min_size=low, max_size=high))


@st.composite
def corrupt_images(draw, network, lanes=4):
    """``(mutation, blob, accepted)``: see :func:`sim.image_corpus.corrupt_image`."""
    return corrupt_image(network, lanes, _DrawPicker(draw))
