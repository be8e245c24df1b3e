"""Data page: pick the demo catalog or a dataset folder; stats, category popularity, the
long tail, the categories the default extractor predicts (once computed), and a lossless
PNG gallery per category."""
import numpy as np
import plotly.express as px
import streamlit as st

from advrec_core.data import DUPLICATES, DataConfig, DatasetSpec
from advrec_core.data.images import display_factor, upscale_nearest
from advrec_core.defenses import DEFENSES
from advrec_core.errors import DataError
from advrec_core.experiments.categories import (
    categorize,
    category_confusion,
    category_counts,
    default_extractor,
)
from ui.charts import show_pngs
from ui.data import DATASET_KEY, cached, current_spec, get_dataset

st.title("Data")
spec = current_spec()
k_core, dup = spec.config.k_core, spec.config.duplicates
source = st.radio("Source", ["Demo catalog", "Dataset folder"], horizontal=True,
                  index=0 if spec.is_demo else 1, key="data_source")
if source == "Dataset folder":
    folder = st.text_input("Folder (authors' layout or generic layout)",
                           value="" if spec.is_demo else spec.source, key="data_folder",
                           placeholder="/data/amazon_men")
    with st.expander("Loading options"):
        k_core = st.number_input("k-core (generic layout)", 0, 100, k_core, key="data_kcore")
        dup = st.selectbox("Repeated (user, item) rows", DUPLICATES,
                           index=DUPLICATES.index(dup), key="data_dup")
    if not folder:
        st.info("Enter a dataset folder. Expected `trainingset.tsv`, `testset.tsv` and "
                "`original/images/` (the authors' layout), or `interactions.csv` and `images/` "
                "(generic layout, optional `items.csv`).")
        st.stop()
    spec = DatasetSpec(folder, DataConfig(int(k_core), dup))
else:
    spec = DatasetSpec()
st.session_state[DATASET_KEY] = spec
ds = get_dataset(spec)

s = ds.summary()
c = st.columns(5)
c[0].metric("Users", f"{s['users']:,}")
c[1].metric("Items", f"{s['items']:,}")
c[2].metric("Interactions", f"{s['interactions']:,}")
c[3].metric("Test users", f"{s['test users']:,}")
c[4].metric("Sparsity", f"{s['sparsity']:.2%}")
for note in ds.notes:
    st.caption(note)

table = ds.category_table()
pop = ds.item_popularity()
left, right = st.columns(2)
with left:
    st.subheader("Category popularity")
    fig = px.bar(table, x="category", y="interactions", hover_data=["items", "per_item", "share"],
                 labels={"interactions": "interactions"})
    st.plotly_chart(fig, key="data_cat_chart")
with right:
    st.subheader("Popularity long tail")
    order = np.argsort(-pop, kind="stable")
    tail = {"rank": np.arange(1, len(pop) + 1), "interactions": pop[order],
            "category": ds.category_names()[order], "item": ds.item_ids[order].astype(str)}
    fig = px.scatter(tail, x="rank", y="interactions", color="category", hover_name="item",
                     log_y=True)
    st.plotly_chart(fig, key="data_tail_chart")
st.dataframe(table, hide_index=True, key="data_cat_table", column_config={
    "share": st.column_config.NumberColumn("share of interactions", format="percent"),
    "per_item": st.column_config.NumberColumn("interactions per item", format="%.1f")})

st.subheader("Given vs predicted categories")
shipped = list(ds.given_predictions)  # the authors' classes.csv per defense, where given
defense = st.radio("Extractor", shipped, format_func=lambda d: DEFENSES.get(d).title,
                   horizontal=True, key="data_pred_defense") if len(shipped) > 1 else "traditional"
extractor = default_extractor(ds, defense)
predicted = cached(categorize, ds, extractor, "predicted")  # None until computed
if predicted is None:
    st.caption(f"The paper's category of an item is the extractor's prediction on its clean "
               f"image. The categories predicted by {extractor.label} appear here once its "
               f"features are computed (the Attack Lab computes them).")
else:
    c = st.columns(2)
    c[0].dataframe(category_counts(ds, predicted), key="data_pred_counts")
    conf = category_confusion(ds, predicted)
    c[1].dataframe(conf[conf["given"] != conf["predicted"]].head(12), hide_index=True,
                   key="data_confusion")
    c[1].caption(f"Items given one category and predicted as another by {extractor.label}, "
                 f"most frequent first.")

st.subheader("Gallery")
names = table["category"].tolist()
cat = st.selectbox("Category", names, key="data_gallery_cat")
n_show = st.slider("Items shown (most popular first)", 4, 48, 16, step=4, key="data_gallery_n")
in_cat = np.flatnonzero(ds.category_names() == cat)
shown = in_cat[np.argsort(-pop[in_cat], kind="stable")][:n_show]
images, captions = [], []
for i in shown:
    try:
        img = ds.load_images([i])[0]
    except DataError as e:
        st.warning(str(e))
        continue
    images.append(upscale_nearest(img, display_factor(*img.shape[:2])))
    captions.append(f"{ds.item_ids[i]} · {pop[i]} interactions")
show_pngs(images, captions)
