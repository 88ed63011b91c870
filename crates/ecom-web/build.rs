fn main() {
    // The folder too, so a new merchant page (not only an edited one) rebuilds.
    println!("cargo:rerun-if-changed=templates/merchant");
    minijinja_embed::embed_templates!("templates", &[".html", ".txt", ".xml"]);
}
