fn main() {
    // The folder too, so a new template file (not only an edited one) rebuilds.
    for folder in ["templates/email", "templates/marketing", "templates/sms", "templates/push"] {
        println!("cargo:rerun-if-changed={folder}");
    }
    minijinja_embed::embed_templates!("templates", &[".html", ".txt"]);
}
