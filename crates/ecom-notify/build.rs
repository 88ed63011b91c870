fn main() {
    // The folder too, so a new template file (not only an edited one) rebuilds.
    println!("cargo:rerun-if-changed=templates/email");
    minijinja_embed::embed_templates!("templates", &[".html", ".txt"]);
}
