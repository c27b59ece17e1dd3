//! GPU-free: every kernel file parses, validates and specialises (every variant's override
//! constants applied) with naga, then lowers to SPIR-V.

use favicon_diffusor::gpu::kernels::{coop_module_source, module_source, Kernel, COOP_FILE, SOURCES};

/// `unpack2x16float` is the one capability beyond baseline WGSL the kernels use; wgpu enables it
/// on every adapter with the SHADER_F16_IN_F32 downlevel flag (all WebGPU and Vulkan ones).
fn validate(module: &naga::Module) -> naga::valid::ModuleInfo {
    validate_with(module, naga::valid::Capabilities::SHADER_FLOAT16_IN_FLOAT32)
}

fn validate_with(module: &naga::Module, caps: naga::valid::Capabilities) -> naga::valid::ModuleInfo {
    naga::valid::Validator::new(naga::valid::ValidationFlags::all(), caps)
        .validate(module)
        .unwrap_or_else(|e| panic!("validation failed: {e:?}"))
}

/// The cooperative-matrix module also needs f16, subgroup builtins and cooperative matrices,
/// the device features `GpuContext` asks for before it builds it.
fn caps_for(file: &str) -> naga::valid::Capabilities {
    use naga::valid::Capabilities as C;
    match file {
        COOP_FILE => C::SHADER_FLOAT16_IN_FLOAT32 | C::SHADER_FLOAT16 | C::SUBGROUP | C::COOPERATIVE_MATRIX,
        _ => C::SHADER_FLOAT16_IN_FLOAT32,
    }
}

#[test]
fn every_wgsl_file_parses_and_validates() {
    for (name, source) in SOURCES {
        let module =
            naga::front::wgsl::parse_str(source).unwrap_or_else(|e| panic!("{name}: {}", e.emit_to_string(source)));
        validate(&module);
        assert!(source.starts_with("// "), "{name} should open with a comment saying what it computes");
    }
    let coop = coop_module_source();
    let module =
        naga::front::wgsl::parse_str(&coop).unwrap_or_else(|e| panic!("{COOP_FILE}: {}", e.emit_to_string(&coop)));
    validate_with(&module, caps_for(COOP_FILE));
    // Without the capabilities the device asks for, the module is refused: the plain kernels
    // must never need them.
    assert!(naga::valid::Validator::new(naga::valid::ValidationFlags::all(), caps_for("matmul.wgsl"))
        .validate(&module)
        .is_err());
}

#[test]
fn every_kernel_variant_specialises_and_lowers_to_spirv() {
    let variants = Kernel::all();
    assert!(variants.len() > 60);
    for kernel in variants {
        let (file, entry, constants) = kernel.source();
        let source = module_source(file).unwrap();
        let module = naga::front::wgsl::parse_str(&source).unwrap();
        let info = validate_with(&module, caps_for(file));
        let mut values = naga::back::PipelineConstants::default();
        for (name, value) in constants {
            values.insert(name.to_string(), value);
        }
        let stage = Some((naga::ShaderStage::Compute, entry));
        let (specialised, spec_info) =
            naga::back::pipeline_constants::process_overrides(&module, &info, stage, &values)
                .unwrap_or_else(|e| panic!("{kernel:?}: {e:?}"));
        let options = naga::back::spv::Options::default();
        let pipeline =
            naga::back::spv::PipelineOptions { shader_stage: naga::ShaderStage::Compute, entry_point: entry.into() };
        naga::back::spv::write_vec(&specialised, &spec_info, &options, Some(&pipeline))
            .unwrap_or_else(|e| panic!("{kernel:?}: {e:?}"));
    }
}

#[test]
fn an_unknown_override_is_refused() {
    let (_, source) = SOURCES[0];
    let module = naga::front::wgsl::parse_str(source).unwrap();
    let info = validate(&module);
    let mut values = naga::back::PipelineConstants::default();
    values.insert("NO_SUCH_CONSTANT".into(), 1.0);
    assert!(naga::back::pipeline_constants::process_overrides(&module, &info, None, &values).is_err());
}

/// WGSL has no includes, so `Step` (two kernels) and matmul's `Params` (also read by
/// adaln.wgsl) are written out in each file. Pin the copies to each other, member by member,
/// and to the sizes of the Rust structs that fill them (`plan::StepParams`, `plan::MatmulParams`).
#[test]
fn structs_shared_between_kernels_have_one_layout() {
    fn layout(file: &str, name: &str) -> Option<(Vec<(String, u32)>, u32)> {
        let source = SOURCES.iter().find(|(n, _)| *n == file).unwrap().1;
        let module = naga::front::wgsl::parse_str(source).unwrap();
        let found = module.types.iter().find_map(|(_, ty)| match &ty.inner {
            naga::TypeInner::Struct { members, span } if ty.name.as_deref() == Some(name) => {
                Some((members.iter().map(|m| (m.name.clone().unwrap_or_default(), m.offset)).collect(), *span))
            }
            _ => None,
        });
        found
    }
    let step = layout("sampler_step.wgsl", "Step").unwrap();
    assert_eq!(step.1, 32, "StepParams is 32 bytes");
    let other = layout("adaln.wgsl", "Step").unwrap();
    assert_eq!(other.0.iter().map(|m| m.1).collect::<Vec<_>>(), step.0.iter().map(|m| m.1).collect::<Vec<_>>());
    assert_eq!(other.1, step.1, "adaln.wgsl: Step differs from sampler_step.wgsl's");
    assert_eq!(other.0[..6], step.0[..6], "adaln.wgsl: Step's fields differ from sampler_step.wgsl's");
    let params = layout("matmul.wgsl", "Params").unwrap();
    assert_eq!(params.1, 64, "MatmulParams is 64 bytes");
    assert_eq!(layout("adaln.wgsl", "Params").unwrap(), params, "adaln.wgsl reads matmul's Params");
}
