"""Helpers the tests share: notebooks re-saved the way Google Colab saves them."""
import copy


def colab_resave(nb: dict, user: str = "Jane Student") -> dict:
    """What Colab writes when a student saves: nbformat_minor 0, cell ids moved to ``metadata.id``,
    ``executionInfo`` with the user's name and id, ``colab`` metadata, outputs kept."""
    nb = copy.deepcopy(nb)
    nb["nbformat_minor"] = 0
    nb["metadata"]["colab"] = {"provenance": [], "name": "autoencoder_probing.ipynb", "gpuType": "T4"}
    nb["metadata"]["accelerator"] = "GPU"
    for i, cell in enumerate(nb["cells"]):
        cell_id = cell.pop("id", f"cell{i}")
        cell["metadata"]["id"] = f"X{i:04d}{cell_id}"[:12]
        cell["metadata"].pop("deletable", None)
        cell["metadata"].pop("editable", None)
        if cell["cell_type"] == "code":
            cell["metadata"]["executionInfo"] = {
                "status": "ok", "timestamp": 1761234567890 + i, "user_tz": 300, "elapsed": 120 + i,
                "user": {"displayName": user, "userId": "104889373522411934567"}}
            cell["metadata"]["colab"] = {"base_uri": "https://localhost:8080/"}
            cell["metadata"]["outputId"] = f"out{i:04d}"
            cell["outputs"] = [{"output_type": "stream", "name": "stdout", "text": "a kept output\n"}]
            cell["execution_count"] = i + 1
    return nb
