//! The simulator is loaded as `libcuda.so.1`, the SONAME programs linked with `-lcuda`
//! ask the loader for.

fn main() {
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libcuda.so.1");
}
