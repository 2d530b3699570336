print("placeholder: replaced by the TPM benchmark")
